"""The producer stage: fetches prices from a source and publishes them to Kafka as ticks.

`python -m producer --help` lists the settings. For tests and tools, `simulated_ticks` yields the
exact ticks the simulated source publishes for a seed, symbols and start time.
"""

from producer.sources.simulated import simulated_ticks

__all__ = ["simulated_ticks"]
