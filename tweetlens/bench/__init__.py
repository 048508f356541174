"""``tweetlens bench``: one workload through three designs, measured and priced side by side.

Modules: ``options`` (validated options, one named error each), ``workload`` (the posts),
``designs`` (the applications compared), ``run`` (each design in a fresh local cloud),
``measure`` (what happened, read back), ``prices`` (``prices.toml``), ``report`` (rates,
dollars, the terminal table), ``chart`` (the PNG).
"""
