"""Infrastructure shared by `training/` and `scanner/`: errors, typed config, HTTP downloads, the RGB recipe."""
