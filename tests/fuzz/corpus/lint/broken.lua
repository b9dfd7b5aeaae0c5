return playbook{ name = "x", on = {
