import json

from gkmvlp_monai.studies.summary import HEADLINES, write_summary


def test_summary_page_from_stage_outputs(tmp_path):
    (tmp_path / "pretrain" / "eval").mkdir(parents=True)
    (tmp_path / "pretrain" / "eval" / "metrics.json").write_text(
        json.dumps({"metrics": {"zs_macro_AUC": 0.9, "i2t_R1": 0.25, "t2i_R10": 0.5}})
    )
    (tmp_path / "pretrain" / "eval" / "params.json").write_text(
        json.dumps({"model_size": "cpu", "image_size": 128})
    )
    (tmp_path / "vqa").mkdir()
    runs = [
        {"init": init, "fraction": f, "metrics": {"overall_acc": acc}}
        for init, f, acc in (
            ("pretrained", 0.1, 0.7),
            ("scratch", 0.1, 0.6),
            ("pretrained", 1.0, 0.8),
            ("scratch", 1.0, 0.75),
        )
    ]
    (tmp_path / "vqa" / "vqa_results.json").write_text(json.dumps({"runs": runs}))
    (tmp_path / "vqa" / "vqa_results.md").write_text("| init | acc |\n| --- | --- |\n| pretrained | 0.7 |")
    md, png = write_summary(tmp_path)
    text = md.read_text()
    assert "| zero-shot macro AUC, 8 most frequent drawn findings | 0.900 |" in text
    assert "| pretrained | 0.7 |" in text
    assert text.count("not run") == 3  # classification, localization, report generation
    assert png.stat().st_size > 1000
    assert HEADLINES["vqa"][1]({"runs": runs})[("scratch", 1.0)] == 0.75
