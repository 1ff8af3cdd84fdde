"""The Cirrus configuration sources: ``.cirrus.yml`` text (``yaml_source``) and the parse entry
point, each turning what a repository holds into the tree of ``domain.cirrus_config.nodes``."""
