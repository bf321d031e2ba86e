module example.test/helix
