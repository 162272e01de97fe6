"""The dashboard stage: a web page and JSON API over the stored data and the live tick stream."""
