"""The analytical cost model: boards, packing schemes, engine designs, layer costs."""
