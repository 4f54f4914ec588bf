"""Helpers of the browser demo that are worth testing on their own: plots, media cuts, the app service."""
