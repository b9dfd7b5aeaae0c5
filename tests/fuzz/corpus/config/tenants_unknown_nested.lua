tenants = {
    demo = {
        microsoft = {
            tenant_id = "t", client_id = "c",
            client_secert = "x",
        },
    },
}
