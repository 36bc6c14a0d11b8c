//! The `cairn` server: HTTP, auth, permissions and the Kinto API.
