connectors = {
    key_file = "secret.key",
    ca_file = "/etc/ssl/certs/ca-certificates.crt",
    proxy = "http://proxy.example.jp:3128",
    timeout = "30s",
    max_attempts = 5,
}
tenants = {
    demo = {
        dry_run = false,
        microsoft = {
            tenant_id = "11111111-2222-3333-4444-555555555555",
            client_id = "66666666-7777-8888-9999-000000000000",
            client_secret = "enc:v1:AAAA",
            authority = "https://login.microsoftonline.com/",
            graph = "http://127.0.0.1:8081",
            defender = "https://api.securitycenter.microsoft.com",
            defender_scope = "https://api.securitycenter.microsoft.com/.default",
        },
        http = { allow = { "hooks.example.jp", "api.example.net" } },
    },
    ["acme-corp"] = {
        microsoft = { tenant_id = "acme.onmicrosoft.com", client_id = "c",
                      certificate = "certs/a.pem", private_key = "/k.pem" },
    },
    zeta = {},
}
