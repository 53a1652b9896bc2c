"""Report generation: the report generator, caption and clinical-efficacy metrics, generated reports."""
