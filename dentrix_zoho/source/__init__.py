"""Reading Dentrix: the catalog, connections, extraction, the synthetic practice and the audit."""
