"""Detection: scenario rules evaluated on the readings as they leave the bus."""
