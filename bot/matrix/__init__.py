"""The thin async shell around matrix-nio: login, store, sync, encryption, sending."""
