data_dri = "/srv"
