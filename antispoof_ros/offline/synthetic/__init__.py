"""Synthetic multi-flash NIR scenes: a stand-in for recordings that do not exist yet.

``render.render_cycle`` renders one dark/front/right/left cycle with ground truth;
``protocol`` builds the thesis-like data collection, its splits and output files;
``pictures``, ``baseline`` and ``benchmark`` document and check the generator.
"""
