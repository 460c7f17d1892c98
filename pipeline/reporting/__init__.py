"""What a run leaves for people: the runs page and the chat notification."""
