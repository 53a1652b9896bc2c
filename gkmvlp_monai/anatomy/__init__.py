"""anatomy"""
