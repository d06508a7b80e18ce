"""facetrend's Jinja2 templates and stylesheet, installed as the package facetrend.templates."""
