"""The one answer path: message in, claim, dispatch, render, cut to length, apology; and where it runs."""
