"""Ad platform adapters behind one protocol: the sandbox (default), Google Ads and Meta."""
