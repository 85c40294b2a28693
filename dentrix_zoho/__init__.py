"""dentrix-zoho: migrate a dental practice from Dentrix G-series to Zoho CRM."""

__version__ = "0.1.0"
