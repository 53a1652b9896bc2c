"""Localization: finding segmenter and zero-shot heat-maps, pointing game / IoU / Dice, overlays."""
