"""`mianzi demo`: a sample program and a chat with it in the terminal."""
