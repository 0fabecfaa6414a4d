"""Packaging entry point; the metadata and extras live in setup.cfg."""

from setuptools import setup

setup()
