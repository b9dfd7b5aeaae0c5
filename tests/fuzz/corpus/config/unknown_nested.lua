intake = {
  maxbody = 1,
}
