"""enginy-crm-adapter: the HTTP front that serves Enginy's Custom CRM contract."""

__version__ = "0.1.0"
