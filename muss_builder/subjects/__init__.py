"""Subjects: who appears in which shot, with ids shared across the shots of a film."""
