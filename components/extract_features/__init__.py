"""Extract features: run the frozen base network once over every split."""
