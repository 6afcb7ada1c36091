"""studio: the product. The model bundle, the photo-to-card pipeline that `infer.py` and the
web page call, batch product cards, the web service (`serve`, `worker`, `uploads`, `web/`)
and stand-in networks for tests (`stub`). It loads models through their packages'
`from_checkpoint`-style calls and never imports training code.
"""
