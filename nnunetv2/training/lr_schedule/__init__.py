"""Learning-rate schedules: a callable epoch -> learning rate."""
