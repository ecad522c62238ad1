"""Sample data generators, one module per dataset (sample_data.py writes them out)."""
