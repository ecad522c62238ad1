"""The analytics API and its viewer: FastAPI over the lake's `web_requests` table."""
