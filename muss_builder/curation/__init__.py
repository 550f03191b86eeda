"""Curation (issue 16): measurements that decide what of a film is fit to train on."""
