"""WeChat Official Account and WeCom: callbacks, the 5-second answer, pushes, access tokens."""
