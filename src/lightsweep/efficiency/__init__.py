"""The efficiency optimizer (`lightsweep efficiency`): baseline vs. each technique vs. their best combination."""
