/* test_norm_families.c: the Microsoft and Azure normalizer families: every record of
 * every fixture in tests/fixtures/microsoft/ (one table row each: source, level,
 * outcome, class, title, observables, raw byte for byte), hostile and damaged records
 * (each rejected alone, with a reason), Japanese text, very long fields, IPv6, records
 * missing their optional members, duplicates (the same hit in both firewall shapes), and
 * the detection of a record's source from its shape. */
#include "engine/normalize.h"

#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/normlib.h"
#include "engine/util.h"
#include "tests/unit/test.h"

#define RECEIVED 1715650385000LL /* 2024-05-14T01:33:05Z */
#define FIXTURES "tests/fixtures/microsoft/"
#define NOBS 4

/* One fixture record and what it must normalize to. An observable is "type|value|role". */
struct expect {
    const char *file;
    int index;
    const char *source;
    int severity;
    const char *outcome;
    int cls;
    const char *title; /* the title starts with this */
    const char *obs[NOBS];
};

static const struct expect fixtures[] = {
    { "appgw-access.json",
      0,
      "azure.appgw",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "GET shop.example.jp/ from 198.51.100.140",
      { "ip|198.51.100.140|src", "domain|shop.example.jp|dst",
        "url|https://shop.example.jp/|dst" } },
    { "appgw-access.json",
      1,
      "azure.appgw",
      SEV_INFO,
      "blocked",
      ALERT_CLASS_EVENT,
      "GET shop.example.jp/api/products from 20",
      { "ip|203.0.113.88|src", "domain|shop.example.jp|dst",
        "url|https://shop.example.jp/api/products?id=1%27%20OR%20%271%27%3D%271|dst" } },
    { "appgw-access.json",
      2,
      "azure.appgw",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "GET legacy.example.jp/download from 203.",
      { "ip|203.0.113.88|src", "domain|legacy.example.jp|dst",
        "url|https://legacy.example.jp/download?file=..%2F..%2F..%2F..%2Fetc%2Fpasswd|dst" } },
    { "appgw-access.json",
      3,
      "azure.appgw",
      SEV_INFO,
      "blocked",
      ALERT_CLASS_EVENT,
      "POST shop.example.jp/wp-login.php from 2",
      { "ip|203.0.113.66|src", "domain|shop.example.jp|dst",
        "url|https://shop.example.jp/wp-login.php|dst" } },
    { "appgw-waf.json",
      0,
      "azure.waf",
      SEV_INFO,
      "attempted",
      ALERT_CLASS_EVENT,
      "WAF Matched rule 942100 on shop.example.",
      { "ip|203.0.113.88|src", "domain|shop.example.jp|dst",
        "url|https://shop.example.jp/api/products|dst" } },
    { "appgw-waf.json",
      1,
      "azure.waf",
      SEV_INFO,
      "attempted",
      ALERT_CLASS_EVENT,
      "WAF Matched rule 942190 on shop.example.",
      { "ip|203.0.113.88|src", "domain|shop.example.jp|dst",
        "url|https://shop.example.jp/api/products|dst" } },
    { "appgw-waf.json",
      2,
      "azure.waf",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "WAF Blocked rule 949110 on shop.example.",
      { "ip|203.0.113.88|src", "domain|shop.example.jp|dst",
        "url|https://shop.example.jp/api/products|dst" } },
    { "appgw-waf.json",
      3,
      "azure.waf",
      SEV_LOW,
      "attempted",
      ALERT_CLASS_EVENT,
      "WAF Detected rule 930100 on legacy.examp",
      { "ip|203.0.113.88|src", "domain|legacy.example.jp|dst",
        "url|https://legacy.example.jp/download|dst" } },
    { "appgw-waf.json",
      4,
      "azure.waf",
      SEV_LOW,
      "attempted",
      ALERT_CLASS_EVENT,
      "WAF Detected rule 930120 on legacy.examp",
      { "ip|203.0.113.88|src", "domain|legacy.example.jp|dst",
        "url|https://legacy.example.jp/download|dst" } },
    { "appgw-waf.json",
      5,
      "azure.waf",
      SEV_MEDIUM,
      "attempted",
      ALERT_CLASS_ALERT,
      "WAF Detected rule 949110 on legacy.examp",
      { "ip|203.0.113.88|src", "domain|legacy.example.jp|dst",
        "url|https://legacy.example.jp/download|dst" } },
    { "appgw-waf.json",
      6,
      "azure.waf",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "WAF Blocked rule BlockKnownScanners on s",
      { "ip|203.0.113.66|src", "domain|shop.example.jp|dst",
        "url|https://shop.example.jp/wp-login.php|dst" } },
    { "azure-activity.json",
      0,
      "azure.activity",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Microsoft.Compute/virtualMachines/start/",
      { "user|ken.watanabe@example.jp|actor", "ip|192.0.2.10|src" } },
    { "azure-activity.json",
      1,
      "azure.activity",
      SEV_INFO,
      "attempted",
      ALERT_CLASS_EVENT,
      "Microsoft.Authorization/roleAssignments/",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src" } },
    { "azure-activity.json",
      2,
      "azure.activity",
      SEV_CRITICAL,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Microsoft.Authorization/roleAssignments/",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src" } },
    { "azure-activity.json",
      3,
      "azure.activity",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Microsoft.Network/networkSecurityGroups/",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src" } },
    { "azure-activity.json",
      4,
      "azure.activity",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "microsoft.insights/diagnosticSettings/de",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src" } },
    { "azure-activity.json",
      5,
      "azure.activity",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Microsoft.Storage/storageAccounts/listKe",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src" } },
    { "azure-bastion.json",
      0,
      "azure.bastion",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Bastion ssh session by ken.watanabe@exam",
      { "user|ken.watanabe@example.jp|actor", "user|azureadmin|target", "ip|192.0.2.10|src",
        "ip|10.1.2.10|dst" } },
    { "azure-bastion.json",
      1,
      "azure.bastion",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "Bastion rdp session by jiro.tanaka@examp",
      { "user|jiro.tanaka@example.jp|actor", "user|azureadmin|target", "ip|203.0.113.45|src",
        "ip|10.1.3.5|dst" } },
    { "azure-bastion.json",
      2,
      "azure.bastion",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Bastion rdp session by jiro.tanaka@examp",
      { "user|jiro.tanaka@example.jp|actor", "user|dbadmin|target", "ip|203.0.113.45|src",
        "ip|10.1.3.5|dst" } },
    { "azure-firewall-legacy.json",
      0,
      "azure.firewall",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Firewall network Allow TCP from 10.1.2.1",
      { "ip|10.1.2.10|src", "ip|10.1.3.5|dst" } },
    { "azure-firewall-legacy.json",
      1,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Firewall network Deny TCP from 10.1.3.5:",
      { "ip|10.1.3.5|src", "ip|203.0.113.45|dst" } },
    { "azure-firewall-legacy.json",
      2,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Firewall application Deny HTTPS from 10.",
      { "ip|10.1.3.5|src", "domain|paste.example.com|dst" } },
    { "azure-firewall-legacy.json",
      3,
      "azure.firewall",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Firewall nat DNAT TCP from 203.0.113.45:",
      { "ip|203.0.113.45|src", "ip|192.0.2.50|dst", "ip|10.1.2.20|nat" } },
    { "azure-firewall-legacy.json",
      4,
      "azure.firewall",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Threat intel Alert: Bot Networks from 10",
      { "ip|10.1.3.5|src", "domain|cdn-sync.example.net|dst" } },
    { "azure-firewall-legacy.json",
      5,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "Threat intel Deny: Bot Networks from 10.",
      { "ip|10.1.2.30|src", "ip|198.51.100.77|dst" } },
    { "azure-firewall-legacy.json",
      6,
      "azure.firewall",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "IDPS Alert: ET EXPLOIT Possible Apache l",
      { "ip|203.0.113.88|src", "ip|10.1.2.30|dst" } },
    { "azure-firewall-legacy.json",
      7,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "IDPS Deny: ET WEB_SERVER Possible SQL In",
      { "ip|203.0.113.88|src", "ip|10.1.2.30|dst" } },
    { "azure-firewall-structured.json",
      0,
      "azure.firewall",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Firewall network Allow TCP from 10.1.2.1",
      { "ip|10.1.2.10|src", "ip|10.1.3.5|dst" } },
    { "azure-firewall-structured.json",
      1,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Firewall network Deny TCP from 10.1.3.5:",
      { "ip|10.1.3.5|src", "ip|203.0.113.45|dst" } },
    { "azure-firewall-structured.json",
      2,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Firewall application Deny HTTPS from 10.",
      { "ip|10.1.3.5|src", "domain|paste.example.com|dst" } },
    { "azure-firewall-structured.json",
      3,
      "azure.firewall",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Firewall nat DNAT TCP from 203.0.113.45:",
      { "ip|203.0.113.45|src", "ip|192.0.2.50|dst", "ip|10.1.2.20|nat" } },
    { "azure-firewall-structured.json",
      4,
      "azure.firewall",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Threat intel Alert: Bot Networks from 10",
      { "ip|10.1.3.5|src", "ip|198.51.100.77|dst", "domain|cdn-sync.example.net|dst" } },
    { "azure-firewall-structured.json",
      5,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "Threat intel Deny: Bot Networks from 10.",
      { "ip|10.1.2.30|src", "ip|198.51.100.77|dst" } },
    { "azure-firewall-structured.json",
      6,
      "azure.firewall",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "IDPS Alert: ET EXPLOIT Possible Apache l",
      { "ip|203.0.113.88|src", "ip|10.1.2.30|dst" } },
    { "azure-firewall-structured.json",
      7,
      "azure.firewall",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "IDPS Deny: ET WEB_SERVER Possible SQL In",
      { "ip|203.0.113.88|src", "ip|10.1.2.30|dst" } },
    { "defender-alerts-graph.json",
      0,
      "defender.alert",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_ALERT,
      "Suspicious JavaScript downloader blocked",
      { "device|cd571981828dee245cff7075609a780c814f97be|compromised",
        "device|29d2c74c-d0b6-5cfe-ae6a-f01005e4732e|compromised",
        "host|jp-lt-0231.corp.example.jp|compromised", "ip|10.10.20.45|compromised" } },
    { "defender-alerts-graph.json",
      1,
      "defender.alert",
      SEV_CRITICAL,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Possible credential dumping of LSASS mem",
      { "device|11cab3145f87c84851caf9dc3835b310b22cc092|compromised",
        "host|jp-srv-fs02.corp.example.jp|compromised", "ip|10.10.5.12|compromised",
        "hash|cf702c47f935b6868192ae09e30f34a8c0c16952567fe96c882a5caf0ff1b45e|related" } },
    { "defender-alerts-graph.json",
      2,
      "mdo.alert",
      SEV_MEDIUM,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Email messages containing malicious URL ",
      { "email|bounce@login-example-jp.example.org|sender",
        "email|it-support@login-example-jp.example.org|sender",
        "email|aiko.kobayashi@example.jp|recipient", "ip|203.0.113.99|sender" } },
    { "defender-alerts-graph.json",
      3,
      "mdo.alert",
      SEV_HIGH,
      "unknown",
      ALERT_CLASS_ALERT,
      "A potentially malicious URL click was de",
      { "url|https://login-example-jp.example.org/owa/auth.php?u=aiko.kobayashi|related",
        "domain|login-example-jp.example.org|related",
        "user|aiko.kobayashi@example.jp|affected" } },
    { "defender-streaming.json",
      0,
      "defender.alert",
      SEV_HIGH,
      "unknown",
      ALERT_CLASS_ALERT,
      "Possible credential dumping of LSASS mem",
      {} },
    { "defender-streaming.json",
      1,
      "defender.evidence",
      SEV_HIGH,
      "unknown",
      ALERT_CLASS_EVENT,
      "Evidence Machine of Possible credential ",
      { "device|11cab3145f87c84851caf9dc3835b310b22cc092|affected",
        "host|jp-srv-fs02.corp.example.jp|affected", "ip|10.10.5.12|affected" } },
    { "defender-streaming.json",
      2,
      "defender.evidence",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Evidence File of Possible credential dum",
      { "device|11cab3145f87c84851caf9dc3835b310b22cc092|related",
        "host|jp-srv-fs02.corp.example.jp|related",
        "hash|a31b20c824e0b16e80b1d34ae3ab7540ee0067daf0ffccaec73d4d637bbc5fad|related",
        "hash|d4c1298f4f9d85bd859e2ee2f2e2ef8890a5e1ab|related" } },
    { "defender-streaming.json",
      3,
      "defender.evidence",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Evidence Process of Possible credential ",
      { "device|11cab3145f87c84851caf9dc3835b310b22cc092|related",
        "host|jp-srv-fs02.corp.example.jp|related",
        "hash|8b825d18e673b5bd6eb454ada3be039e8e79015c|related",
        "user|example\\svc_backup|related" } },
    { "defender-streaming.json",
      4,
      "defender.evidence",
      SEV_HIGH,
      "unknown",
      ALERT_CLASS_EVENT,
      "Evidence Url of Possible credential dump",
      { "url|https://cdn-sync.example.net/api/v2/poll|dst", "domain|cdn-sync.example.net|dst" } },
    { "defender-streaming.json",
      5,
      "mdo.email",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Mail \"Action required: mailbox storage f",
      { "email|bounce@login-example-jp.example.org|sender",
        "email|it-support@login-example-jp.example.org|sender",
        "email|aiko.kobayashi@example.jp|recipient", "ip|203.0.113.99|sender" } },
    { "defender-streaming.json",
      6,
      "mdo.postdelivery",
      SEV_INFO,
      "blocked",
      ALERT_CLASS_EVENT,
      "Phish ZAP on mail to aiko.kobayashi@exam",
      { "email|aiko.kobayashi@example.jp|recipient" } },
    { "defender-streaming.json",
      7,
      "mdo.urlclick",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "URL click by aiko.kobayashi@example.jp: ",
      { "user|aiko.kobayashi@example.jp|actor", "ip|10.10.20.52|src",
        "url|https://login-example-jp.example.org/owa/auth.php?u=aiko.kobayashi|dst",
        "domain|login-example-jp.example.org|dst" } },
    { "defender-streaming.json",
      8,
      "mdo.email",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Mail \"Invoice 2024-0514\" from billing@ex",
      { "email|billing@example.net|sender", "email|mika.ito@example.jp|recipient",
        "ip|198.51.100.61|sender", "domain|example.net|sender" } },
    { "entra-audit.json",
      0,
      "entra.audit",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Add member to group by ken.watanabe@exam",
      { "user|ken.watanabe@example.jp|actor", "ip|10.10.9.5|src",
        "user|mika.ito@example.jp|target" } },
    { "entra-audit.json",
      1,
      "entra.audit",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Consent to application by jiro.tanaka@ex",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src" } },
    { "entra-audit.json",
      2,
      "entra.audit",
      SEV_HIGH,
      "blocked",
      ALERT_CLASS_ALERT,
      "Add member to role by jiro.tanaka@exampl",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src",
        "user|jiro.tanaka@example.jp|target" } },
    { "entra-audit.json",
      3,
      "entra.audit",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Add service principal credentials by jir",
      { "user|jiro.tanaka@example.jp|actor", "ip|203.0.113.45|src" } },
    { "entra-audit.json",
      4,
      "entra.audit",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Reset user password by ken.watanabe@exam",
      { "user|ken.watanabe@example.jp|actor", "ip|10.10.9.5|src",
        "user|jiro.tanaka@example.jp|target" } },
    { "entra-idprotection.json",
      0,
      "entra.risk",
      SEV_MEDIUM,
      "unknown",
      ALERT_CLASS_ALERT,
      "Risk detection unfamiliarFeatures for ji",
      { "user|jiro.tanaka@example.jp|account", "ip|203.0.113.45|src" } },
    { "entra-idprotection.json",
      1,
      "entra.risk",
      SEV_HIGH,
      "unknown",
      ALERT_CLASS_ALERT,
      "Risk detection passwordSpray for jiro.ta",
      { "user|jiro.tanaka@example.jp|account", "ip|203.0.113.45|src" } },
    { "entra-idprotection.json",
      2,
      "entra.riskyuser",
      SEV_HIGH,
      "unknown",
      ALERT_CLASS_ALERT,
      "Risky user jiro.tanaka@example.jp: high,",
      { "user|jiro.tanaka@example.jp|account" } },
    { "entra-idprotection.json",
      3,
      "entra.riskyuser",
      SEV_INFO,
      "unknown",
      ALERT_CLASS_ALERT,
      "Risky user aiko.kobayashi@example.jp: no",
      { "user|aiko.kobayashi@example.jp|account" } },
    { "entra-signin.json",
      0,
      "entra.signin",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Sign-in succeeded: taro.yamada@example.j",
      { "user|taro.yamada@example.jp|account", "ip|192.0.2.10|src",
        "device|29d2c74c-d0b6-5cfe-ae6a-f01005e4732e|src", "host|JP-LT-0231|src" } },
    { "entra-signin.json",
      1,
      "entra.signin",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Sign-in failed: jiro.tanaka@example.jp t",
      { "user|jiro.tanaka@example.jp|account", "ip|203.0.113.45|src" } },
    { "entra-signin.json",
      2,
      "entra.signin",
      SEV_LOW,
      "blocked",
      ALERT_CLASS_EVENT,
      "Sign-in failed: aiko.kobayashi@example.j",
      { "user|aiko.kobayashi@example.jp|account", "ip|203.0.113.45|src" } },
    { "entra-signin.json",
      3,
      "entra.signin",
      SEV_MEDIUM,
      "blocked",
      ALERT_CLASS_ALERT,
      "Sign-in failed: mika.ito@example.jp to O",
      { "user|mika.ito@example.jp|account", "ip|203.0.113.45|src" } },
    { "entra-signin.json",
      4,
      "entra.signin",
      SEV_MEDIUM,
      "blocked",
      ALERT_CLASS_ALERT,
      "Sign-in failed: ken.watanabe@example.jp ",
      { "user|ken.watanabe@example.jp|account", "ip|203.0.113.45|src" } },
    { "entra-signin.json",
      5,
      "entra.signin",
      SEV_HIGH,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Sign-in succeeded: jiro.tanaka@example.j",
      { "user|jiro.tanaka@example.jp|account", "ip|203.0.113.45|src" } },
    { "intune-audit.json",
      0,
      "intune.audit",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Patch DeviceConfiguration by ken.watanab",
      { "user|ken.watanabe@example.jp|actor" } },
    { "intune-audit.json",
      1,
      "intune.audit",
      SEV_MEDIUM,
      "succeeded",
      ALERT_CLASS_ALERT,
      "Delete DeviceCompliancePolicy by mika.it",
      { "user|mika.ito@example.jp|actor" } },
    { "intune-audit.json",
      2,
      "intune.audit",
      SEV_INFO,
      "succeeded",
      ALERT_CLASS_EVENT,
      "Wipe ManagedDevice by ken.watanabe@examp",
      { "user|ken.watanabe@example.jp|actor", "host|JP-IPH-0077|target" } },
    { "intune-audit.json",
      3,
      "intune.audit",
      SEV_INFO,
      "blocked",
      ALERT_CLASS_EVENT,
      "Retire ManagedDevice by ken.watanabe@exa",
      { "user|ken.watanabe@example.jp|actor", "host|JP-LT-0102|target" } },
    { "intune-compliance.json",
      0,
      "intune.device",
      SEV_INFO,
      "unknown",
      ALERT_CLASS_EVENT,
      "Device JP-LT-0231: Compliant (threat lev",
      { "device|29d2c74c-d0b6-5cfe-ae6a-f01005e4732e|affected",
        "device|c99a4cf2-1b19-5393-a286-7b435aa15945|affected", "host|JP-LT-0231|affected",
        "user|taro.yamada@example.jp|owner" } },
    { "intune-compliance.json",
      1,
      "intune.device",
      SEV_LOW,
      "unknown",
      ALERT_CLASS_EVENT,
      "Device JP-LT-0412: Noncompliant (threat ",
      { "device|06b73fb5-7197-5f0a-a5e5-60082a9fc511|affected",
        "device|8a70b6fd-7c6b-53c7-a00b-6982a1a1d661|affected", "host|JP-LT-0412|affected",
        "user|mika.ito@example.jp|owner" } },
    { "intune-compliance.json",
      2,
      "intune.device",
      SEV_HIGH,
      "unknown",
      ALERT_CLASS_ALERT,
      "Device JP-LT-0388: Noncompliant (threat ",
      { "device|8c9686e1-d933-5898-ae1c-e36329cb1488|affected",
        "device|5fdb364b-4613-59f7-a460-94f3793502b3|affected", "host|JP-LT-0388|affected",
        "user|jiro.tanaka@example.jp|owner" } },
};

#define NFIXTURES (sizeof(fixtures) / sizeof(fixtures[0]))

/* Is "type|value|role" among a's observables? */
static int
has_obs(const struct alert *a, const char *want)
{
    char buf[512];

    for (size_t i = 0; i < a->nobs; i++) {
        snprintf(buf, sizeof(buf), "%s|%s|%s", a->obs[i].type, a->obs[i].value,
                 a->obs[i].role != NULL ? a->obs[i].role : "");
        if (strcmp(buf, want) == 0) {
            return 1;
        }
    }
    return 0;
}

/* A fixture file: its text, parse tree, records array and the byte spans of its records. */
struct fixture {
    char *text;
    size_t len;
    cJSON *root;
    const cJSON *records;
    struct json_span *spans;
    long nspans;
};

static int
fixture_open(const char *name, struct fixture *f)
{
    char path[256];
    char *err = NULL;
    const char *key;

    memset(f, 0, sizeof(*f));
    snprintf(path, sizeof(path), FIXTURES "%s", name);
    f->text = util_read_file(path, 1 << 22, &f->len, &err);
    if (f->text == NULL ||
        json_parse_strict(f->text, f->len, JSON_MAX_DEPTH, &f->root, &err) == -1) {
        T_FAIL_("%s: %s", path, err != NULL ? err : "?");
        free(err);
        free(f->text);
        return -1;
    }
    key = json_get(f->root, "records") != NULL ? "records" : "value";
    f->records = json_get(f->root, key);
    f->nspans = json_array_spans(f->text, f->len, key, &f->spans);
    return 0;
}

static void
fixture_close(struct fixture *f)
{
    cJSON_Delete(f->root);
    free(f->spans);
    free(f->text);
}

/* Normalize record i of f with its own bytes as raw. */
static int
fixture_norm(const struct fixture *f, int i, struct alert *a, const char **src, char **err)
{
    return normalize_record(cJSON_GetArrayItem(f->records, i), f->text + f->spans[i].off,
                            f->spans[i].len, NULL, RECEIVED, a, src, err);
}

/* Every row of the table, and every record of every fixture file has a row. */
static void
test_fixture_table(void)
{
    const char *last = NULL;
    struct fixture f;
    int have = 0, rows = 0;

    memset(&f, 0, sizeof(f));
    for (size_t r = 0; r < NFIXTURES; r++) {
        const struct expect *e = &fixtures[r];
        struct alert a;
        const char *src = NULL;
        char *err = NULL, *json;
        cJSON *back = NULL;

        if (last == NULL || strcmp(last, e->file) != 0) {
            if (have) {
                T_EQ_INT(rows, cJSON_GetArraySize(f.records)); /* no record left untested */
                fixture_close(&f);
            }
            have = fixture_open(e->file, &f) == 0;
            if (!have) {
                return;
            }
            T_EQ_INT(f.nspans, cJSON_GetArraySize(f.records));
            last = e->file;
            rows = 0;
        }
        rows++;
        if (fixture_norm(&f, e->index, &a, &src, &err) == -1) {
            T_FAIL_("%s[%d] rejected: %s", e->file, e->index, err);
            free(err);
            continue;
        }
        if (strcmp(a.source, e->source) != 0 || a.severity != e->severity ||
            strcmp(a.outcome, e->outcome) != 0 || a.cls != e->cls ||
            strncmp(a.title, e->title, strlen(e->title)) != 0) {
            T_FAIL_("%s[%d]: got %s %s %s %s \"%s\"", e->file, e->index, a.source,
                    severity_name(a.severity), a.outcome, alert_class_name(a.cls), a.title);
        }
        T_EQ_STR(src, e->source);
        for (int k = 0; k < NOBS && e->obs[k] != NULL; k++) {
            if (!has_obs(&a, e->obs[k])) {
                T_FAIL_("%s[%d]: no observable %s", e->file, e->index, e->obs[k]);
            }
        }
        /* The raw record byte for byte, a dedup key, a time, and valid JSON out. */
        T_ASSERT(strlen(a.raw) == f.spans[e->index].len &&
                 memcmp(a.raw, f.text + f.spans[e->index].off, f.spans[e->index].len) == 0);
        T_ASSERT(a.source_id != NULL && a.source_id[0] != '\0' && strlen(a.source_id) <= 256);
        T_ASSERT(a.time_ms > 1700000000000LL && a.time_ms < 1800000000000LL);
        json = alert_to_json(&a);
        T_ASSERT(json_parse_strict(json, strlen(json), JSON_MAX_DEPTH + 2, &back, &err) == 0);
        cJSON_Delete(back);
        free(json);
        alert_free(&a);
    }
    if (have) {
        T_EQ_INT(rows, cJSON_GetArraySize(f.records));
        fixture_close(&f);
    }
}

/* Normalize text; 0 with *a, or -1 with *err (caller frees). */
static int
norm_text(const char *text, const char *hint, struct alert *a, char **err)
{
    cJSON *obj = NULL;
    int rc;

    *err = NULL;
    if (json_parse_strict(text, strlen(text), JSON_MAX_DEPTH, &obj, err) == -1) {
        memset(a, 0, sizeof(*a));
        return -1;
    }
    rc = normalize_record(obj, text, strlen(text), hint, RECEIVED, a, NULL, err);
    cJSON_Delete(obj);
    return rc;
}

/* Records of a known shape that cannot be understood: rejected with a reason that names
 * the member, and *a left empty. */
static void
test_rejected_records(void)
{
    static const struct {
        const char *text, *want;
    } bad[] = {
        { "{\"category\":\"SignInLogs\",\"properties\":\"x\"}", "properties: expected an object" },
        { "{\"category\":\"SignInLogs\",\"properties\":{\"id\":\"s1\"}}", "status.errorCode" },
        { "{\"category\":\"SignInLogs\",\"properties\":{\"status\":{\"errorCode\":0}}}",
          "id: required" },
        { "{\"category\":\"SignInLogs\",\"time\":\"yesterday\",\"properties\":{\"id\":\"s\","
          "\"status\":{\"errorCode\":0}}}",
          "time: expected a timestamp" },
        { "{\"category\":\"SignInLogs\",\"properties\":{\"id\":\"s\",\"createdDateTime\":5,"
          "\"status\":{\"errorCode\":0}}}",
          "properties.createdDateTime: expected a timestamp" },
        { "{\"category\":\"AuditLogs\",\"properties\":{\"initiatedBy\":{}}}",
          "activityDisplayName: required" },
        { "{\"category\":\"UserRiskEvents\",\"properties\":{\"riskLevel\":\"high\"}}",
          "id: required" },
        { "{\"category\":\"RiskyUsers\",\"properties\":{\"riskLevel\":\"high\"}}", "id: required" },
        { "{\"category\":\"AdvancedHunting-AlertInfo\",\"properties\":[]}", "properties" },
        { "{\"category\":\"AdvancedHunting-AlertInfo\",\"properties\":{\"Title\":\"t\"}}",
          "AlertId: required" },
        { "{\"category\":\"AdvancedHunting-AlertEvidence\",\"properties\":{}}",
          "AlertId: required" },
        { "{\"category\":\"AdvancedHunting-EmailEvents\",\"properties\":{}}",
          "NetworkMessageId: required" },
        { "{\"category\":\"AdvancedHunting-UrlClickEvents\",\"properties\":{}}", "Url: required" },
        { "{\"@odata.type\":\"#microsoft.graph.security.alert\",\"title\":\"t\"}", "id: required" },
        { "{\"@odata.type\":\"#microsoft.graph.security.incident\",\"displayName\":\"x\"}",
          "id: required" },
        { "{\"category\":\"AuditLogs\",\"properties\":{\"AuditEventId\":\"a\"}}",
          "operationName: required" },
        { "{\"category\":\"DeviceComplianceOrg\",\"properties\":{\"DeviceName\":\"x\"}}",
          "DeviceId: required" },
        { "{\"category\":\"DeviceComplianceOrg\",\"properties\":7}", "properties" },
        { "{\"category\":\"BastionAuditLogs\"}", "properties: expected an object" },
        { "{\"category\":\"AzureFirewallNetworkRule\",\"operationName\":"
          "\"AzureFirewallNetworkRuleLog\",\"properties\":{\"msg\":\"garbage\"}}",
          "request from" },
        { "{\"category\":\"AzureFirewallNetworkRule\",\"properties\":{}}", "properties.msg" },
        { "{\"category\":\"AZFWNetworkRule\",\"time\":\"2024-13-45T00:00:00Z\","
          "\"properties\":{}}",
          "time: expected" },
        { "{\"category\":\"ApplicationGatewayFirewallLog\",\"properties\":{\"ruleId\":\"1\"}}",
          "properties.action: required" },
        { "{\"category\":\"ApplicationGatewayAccessLog\",\"properties\":null}", "properties" },
        { "{\"category\":\"NoSuchCategory\",\"properties\":{}}",
          "no normalizer knows records of category \"NoSuchCategory\"" },
        { "{\"@odata.type\":\"#microsoft.graph.nothing\"}", "no normalizer knows objects of type" },
        { "{\"hello\":\"world\"}", "not a known record shape" },
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct alert a;
        char *err = NULL;

        if (norm_text(bad[i].text, NULL, &a, &err) == 0) {
            T_FAIL_("accepted: %s", bad[i].text);
            alert_free(&a);
            continue;
        }
        if (err == NULL || strstr(err, bad[i].want) == NULL) {
            T_FAIL_("%s: error \"%s\" lacks \"%s\"", bad[i].text, err ? err : "(none)",
                    bad[i].want);
        }
        T_ASSERT(a.source == NULL && a.raw == NULL && a.nobs == 0);
        free(err);
    }
}

/* Each family with only the members it cannot do without: accepted, the time falls back
 * to the received time, every string the model requires is there. */
static void
test_missing_optional(void)
{
    static const struct {
        const char *text, *source;
    } min[] = {
        { "{\"category\":\"SignInLogs\",\"properties\":{\"id\":\"s\",\"status\":{\"errorCode\":"
          "50126}}}",
          "entra.signin" },
        { "{\"category\":\"NonInteractiveUserSignInLogs\",\"resultType\":\"0\","
          "\"correlationId\":\"c\",\"properties\":{}}",
          "entra.signin" },
        { "{\"category\":\"AuditLogs\",\"operationName\":\"Update user\",\"properties\":{"
          "\"loggedByService\":\"Core Directory\"}}",
          "entra.audit" },
        { "{\"category\":\"UserRiskEvents\",\"properties\":{\"id\":\"r\"}}", "entra.risk" },
        { "{\"category\":\"RiskyUsers\",\"properties\":{\"id\":\"u\"}}", "entra.riskyuser" },
        { "{\"category\":\"AdvancedHunting-AlertInfo\",\"properties\":{\"AlertId\":\"a\"}}",
          "defender.alert" },
        { "{\"category\":\"AdvancedHunting-DeviceProcessEvents\",\"properties\":{}}",
          "defender.hunting" },
        { "{\"@odata.type\":\"#microsoft.graph.security.alert\",\"id\":\"x\"}", "defender.alert" },
        { "{\"@odata.type\":\"#microsoft.graph.security.incident\",\"id\":42}",
          "defender.incident" },
        { "{\"category\":\"AuditLogs\",\"operationName\":\"Create App\",\"properties\":{"
          "\"Actor\":{}}}",
          "intune.audit" },
        { "{\"category\":\"Devices\",\"properties\":{\"DeviceId\":\"d\"}}", "intune.device" },
        { "{\"category\":\"Administrative\",\"operationName\":\"Microsoft.Web/sites/write\"}",
          "azure.activity" },
        { "{\"category\":\"BastionAuditLogs\",\"properties\":{}}", "azure.bastion" },
        { "{\"category\":\"AZFWNetworkRule\",\"properties\":{}}", "azure.firewall" },
        { "{\"category\":\"AzureFirewallDnsProxy\",\"properties\":{\"msg\":\"DNS Request: x\"}}",
          "azure.firewall" },
        { "{\"category\":\"ApplicationGatewayAccessLog\",\"properties\":{}}", "azure.appgw" },
        { "{\"category\":\"ApplicationGatewayFirewallLog\",\"properties\":{\"action\":"
          "\"Blocked\"}}",
          "azure.waf" },
    };

    for (size_t i = 0; i < sizeof(min) / sizeof(min[0]); i++) {
        struct alert a;
        char *err = NULL;

        if (norm_text(min[i].text, NULL, &a, &err) == -1) {
            T_FAIL_("rejected %s: %s", min[i].text, err);
            free(err);
            continue;
        }
        T_EQ_STR(a.source, min[i].source);
        T_EQ_INT(a.time_ms, RECEIVED);
        T_ASSERT(a.source_id != NULL && a.title != NULL && a.outcome != NULL);
        T_EQ_STR(a.raw, min[i].text);
        alert_free(&a);
    }
}

/* Japanese display names and UPNs: kept as UTF-8 in titles and observables. */
static void
test_unicode(void)
{
    struct alert a;
    char *err = NULL, *json;
    cJSON *back = NULL;
    const char *text =
        "{\"category\":\"SignInLogs\",\"time\":\"2024-05-14T00:12:41Z\",\"properties\":{"
        "\"id\":\"u-1\",\"userDisplayName\":\"\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e\","
        "\"userPrincipalName\":\"\xe5\xa4\xaa\xe9\x83\x8e@example.jp\",\"appDisplayName\":"
        "\"\xe7\xa0\x94\xe7\xa9\xb6\xe3\x83\x9d\xe3\x83\xbc\xe3\x82\xbf\xe3\x83\xab\","
        "\"status\":{\"errorCode\":50126,\"failureReason\":\"\\u30d1\\u30b9\\u30ef\\u30fc\\u30c9"
        "\"}}}";

    T_REQUIRE(norm_text(text, NULL, &a, &err) == 0);
    T_CONTAINS(a.title, "\xe5\xa4\xaa\xe9\x83\x8e@example.jp");
    T_CONTAINS(a.title, "\xe7\xa0\x94\xe7\xa9\xb6\xe3\x83\x9d\xe3\x83\xbc\xe3\x82\xbf\xe3\x83\xab");
    T_CONTAINS(a.title, "\xe3\x83\x91\xe3\x82\xb9\xe3\x83\xaf\xe3\x83\xbc\xe3\x83\x89");
    T_ASSERT(has_obs(&a, "user|\xe5\xa4\xaa\xe9\x83\x8e@example.jp|account"));
    T_EQ_STR(a.raw, text); /* the \u escapes stay as they came */
    json = alert_to_json(&a);
    T_ASSERT(json_parse_strict(json, strlen(json), JSON_MAX_DEPTH + 2, &back, &err) == 0);
    cJSON_Delete(back);
    free(json);
    alert_free(&a);
}

/* Very long fields: the record is accepted and kept whole in raw; a title is cut on a
 * character boundary under the model's cap; an observable over its cap is left out (a
 * cut URL would be a different URL), the others stay. */
static void
test_long_fields(void)
{
    struct buf b;
    struct alert a;
    char *err = NULL;
    size_t big = 200000;

    buf_init(&b, 0);
    (void)!buf_puts(
        &b, "{\"category\":\"AdvancedHunting-UrlClickEvents\",\"properties\":{"
            "\"ActionType\":\"ClickAllowed\",\"ThreatTypes\":\"Phish\","
            "\"AccountUpn\":\"aiko.kobayashi@example.jp\",\"Url\":\"https://x.example.org/");
    for (size_t i = 0; i < big; i++) {
        (void)!buf_puts(&b, "a");
    }
    (void)!buf_puts(&b, "\"}}");
    T_REQUIRE(norm_text(b.data, NULL, &a, &err) == 0);
    T_EQ_INT(strlen(a.raw), b.len);
    T_EQ_STR(a.outcome, "succeeded");
    T_EQ_INT(a.severity, SEV_HIGH);
    T_ASSERT(has_obs(&a, "user|aiko.kobayashi@example.jp|actor"));
    for (size_t i = 0; i < a.nobs; i++) {
        T_ASSERT(strlen(a.obs[i].value) <= NORMLIB_VALUE_MAX);
        T_ASSERT(strcmp(a.obs[i].type, "url") != 0);
    }
    alert_free(&a);
    buf_free(&b);

    /* A title built from a 100 KB multi-byte name stays under the cap, on a boundary. */
    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"category\":\"AdvancedHunting-AlertInfo\",\"properties\":{"
                        "\"AlertId\":\"long-1\",\"Title\":\"");
    for (size_t i = 0; i < 100000 / 3; i++) {
        (void)!buf_puts(&b, "\xe7\x81\xab");
    }
    (void)!buf_puts(&b, "\"}}");
    T_REQUIRE(norm_text(b.data, NULL, &a, &err) == 0);
    T_ASSERT(strlen(a.title) <= 1024);
    T_ASSERT(util_utf8_char(a.title, strlen(a.title)) == 3);
    {
        size_t n = strlen(a.title), i = 0;

        while (i < n) {
            size_t l = util_utf8_char(a.title + i, n - i);

            T_REQUIRE(l > 0);
            i += l;
        }
    }
    alert_free(&a);
    buf_free(&b);
}

/* IPv6 addresses in every family that logs addresses: observables in canonical form. */
static void
test_ipv6(void)
{
    static const struct {
        const char *text, *want;
    } v6[] = {
        { "{\"category\":\"SignInLogs\",\"properties\":{\"id\":\"v6\",\"ipAddress\":"
          "\"2001:DB8:0:0:0:0:0:1\",\"status\":{\"errorCode\":0}}}",
          "ip|2001:db8::1|src" },
        { "{\"category\":\"AZFWNetworkRule\",\"properties\":{\"SourceIp\":\"2001:db8::5\","
          "\"DestinationIp\":\"2001:db8:1::9\",\"Action\":\"Deny\"}}",
          "ip|2001:db8:1::9|dst" },
        { "{\"category\":\"AzureFirewallNetworkRule\",\"operationName\":"
          "\"AzureFirewallNetworkRuleLog\",\"properties\":{\"msg\":\"TCP request from "
          "[2001:db8::5]:50110 to [2001:db8::77]:443. Action: Deny. \"}}",
          "ip|2001:db8::77|dst" },
        { "{\"category\":\"ApplicationGatewayAccessLog\",\"properties\":{\"clientIP\":"
          "\"2001:db8::abcd\",\"httpStatus\":200}}",
          "ip|2001:db8::abcd|src" },
        { "{\"category\":\"BastionAuditLogs\",\"properties\":{\"clientIpAddress\":"
          "\"2001:db8::2\",\"message\":\"Login Failed\"}}",
          "ip|2001:db8::2|src" },
        { "{\"category\":\"AdvancedHunting-EmailEvents\",\"properties\":{\"NetworkMessageId\":"
          "\"m\",\"SenderIPv6\":\"2001:db8::99\",\"DeliveryAction\":\"Delivered\"}}",
          "ip|2001:db8::99|sender" },
    };

    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
        struct alert a;
        char *err = NULL;

        if (norm_text(v6[i].text, NULL, &a, &err) == -1) {
            T_FAIL_("rejected %s: %s", v6[i].text, err);
            free(err);
            continue;
        }
        if (!has_obs(&a, v6[i].want)) {
            T_FAIL_("%s: no observable %s", v6[i].text, v6[i].want);
        }
        alert_free(&a);
    }
}

/* Duplicates: the same record twice (Event Hub delivers at least once) has one
 * source_id; so has each firewall hit logged in both shapes; records that differ do not. */
static void
test_duplicates(void)
{
    struct fixture legacy, structured, signin;

    T_REQUIRE(fixture_open("azure-firewall-legacy.json", &legacy) == 0);
    T_REQUIRE(fixture_open("azure-firewall-structured.json", &structured) == 0);
    T_REQUIRE(fixture_open("entra-signin.json", &signin) == 0);
    for (int i = 0; i < cJSON_GetArraySize(legacy.records); i++) {
        struct alert a, b;
        char *err = NULL;

        T_REQUIRE(fixture_norm(&legacy, i, &a, NULL, &err) == 0);
        T_REQUIRE(fixture_norm(&structured, i, &b, NULL, &err) == 0);
        T_EQ_STR(a.source_id, b.source_id); /* one hit, two shapes */
        alert_free(&b);
        T_REQUIRE(fixture_norm(&legacy, i, &b, NULL, &err) == 0);
        T_EQ_STR(a.source_id, b.source_id); /* the same record again */
        alert_free(&b);
        alert_free(&a);
    }
    {
        char *ids[8];
        int n = cJSON_GetArraySize(signin.records);

        for (int i = 0; i < n && i < 8; i++) {
            struct alert a;
            char *err = NULL;

            T_REQUIRE(fixture_norm(&signin, i, &a, NULL, &err) == 0);
            ids[i] = xstrdup(a.source_id);
            alert_free(&a);
            for (int k = 0; k < i; k++) {
                T_ASSERT(strcmp(ids[k], ids[i]) != 0);
            }
        }
        for (int i = 0; i < n && i < 8; i++) {
            free(ids[i]);
        }
    }
    fixture_close(&legacy);
    fixture_close(&structured);
    fixture_close(&signin);
}

/* The source comes from the shape, not from the hint; a record with "source" is generic;
 * a Graph object without a category is recognized by its members. */
static void
test_detection(void)
{
    static const struct {
        const char *text, *source;
    } shapes[] = {
        { "{\"createdDateTime\":\"2024-05-14T00:12:41Z\",\"userPrincipalName\":\"a@example.jp\","
          "\"appId\":\"x\",\"id\":\"g-1\",\"status\":{\"errorCode\":0}}",
          "entra.signin" },
        { "{\"riskEventType\":\"passwordSpray\",\"detectedDateTime\":\"2024-05-14T00:00:00Z\","
          "\"id\":\"r\"}",
          "entra.risk" },
        { "{\"riskLastUpdatedDateTime\":\"2024-05-14T00:00:00Z\",\"riskLevel\":\"high\","
          "\"id\":\"u\"}",
          "entra.riskyuser" },
        { "{\"activityDisplayName\":\"Add user\",\"initiatedBy\":{},\"category\":"
          "\"UserManagement\",\"id\":\"d\",\"result\":\"success\"}",
          "entra.audit" },
        { "{\"serviceSource\":\"microsoftDefenderForOffice365\",\"detectionSource\":\"x\","
          "\"id\":\"m\"}",
          "mdo.alert" },
        { "{\"complianceState\":\"noncompliant\",\"deviceName\":\"JP-LT-1\",\"id\":\"d\"}",
          "intune.device" },
    };

    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        struct alert a;
        char *err = NULL;

        if (norm_text(shapes[i].text, "it.hint", &a, &err) == -1) {
            T_FAIL_("rejected %s: %s", shapes[i].text, err);
            free(err);
            continue;
        }
        T_EQ_STR(a.source, shapes[i].source);
        alert_free(&a);
    }
}

/* The legacy firewall text as the firewall really writes it (docs/sources.md "Azure
 * Firewall"): two spaces, a doubled period, an ICMP source without port, a request
 * without destination, lower-case actions. */
static void
test_azfw_legacy_text(void)
{
    static const struct {
        const char *op, *msg, *outcome;
        int sev;
        const char *obs[3];
    } cases[] = {
        { "AzureFirewallApplicationRuleLog",
          "HTTP  request from 10.0.0.1:6065 to x.example.com:80. Url: x.example.com/path. "
          "Action: Allow.. Policy: p. Rule Collection: c. Rule: r",
          "succeeded",
          SEV_INFO,
          { "ip|10.0.0.1|src", "domain|x.example.com|dst", "url|x.example.com/path|dst" } },
        { "AzureFirewallNetworkRuleLog",
          "ICMP Type=8 request from 10.0.0.2: to 10.0.0.3:. Action: Deny. ",
          "blocked",
          SEV_LOW,
          { "ip|10.0.0.2|src", "ip|10.0.0.3|dst", NULL } },
        { "AzureFirewallApplicationRuleLog",
          "HTTPS request from 10.0.0.1:6065. Action: Deny. Reason: SNI TLS extension was missing.",
          "blocked",
          SEV_LOW,
          { "ip|10.0.0.1|src", NULL, NULL } },
        { "AzureFirewallIDSLog",
          "TCP request from 203.0.113.88:1 to 10.1.2.30:8080. Action: drop. Signature: 1. IDS: "
          "A.B. C (x.y). Priority: 1. Classification: z",
          "blocked",
          SEV_LOW,
          { "ip|203.0.113.88|src", NULL, NULL } },
        { "AzureFirewallIDSLog",
          "TCP request from 203.0.113.88:1 to 10.1.2.30:8080. Action: alert. Signature: 1. IDS: "
          "A.B. C (x.y). Priority: 2. Classification: z",
          "succeeded",
          SEV_MEDIUM,
          { "ip|10.1.2.30|dst", NULL, NULL } },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct alert a;
        char *err = NULL;
        cJSON *obj = cJSON_CreateObject(), *p = cJSON_CreateObject();
        char *text;

        cJSON_AddStringToObject(obj, "category", "AzureFirewallNetworkRule");
        cJSON_AddStringToObject(obj, "operationName", cases[i].op);
        cJSON_AddStringToObject(p, "msg", cases[i].msg);
        cJSON_AddItemToObject(obj, "properties", p);
        text = json_print(obj);
        cJSON_Delete(obj);
        if (norm_text(text, NULL, &a, &err) == -1) {
            T_FAIL_("rejected %s: %s", cases[i].msg, err);
            free(err);
            free(text);
            continue;
        }
        T_EQ_STR(a.source, "azure.firewall");
        T_EQ_STR(a.outcome, cases[i].outcome);
        T_EQ_INT(a.severity, cases[i].sev);
        for (int k = 0; k < 3 && cases[i].obs[k] != NULL; k++) {
            if (!has_obs(&a, cases[i].obs[k])) {
                T_FAIL_("%s: no observable %s", cases[i].msg, cases[i].obs[k]);
            }
        }
        alert_free(&a);
        free(text);
    }
}

TEST_LIST = {
    { "fixture_table", test_fixture_table },
    { "rejected_records", test_rejected_records },
    { "missing_optional", test_missing_optional },
    { "unicode", test_unicode },
    { "long_fields", test_long_fields },
    { "ipv6", test_ipv6 },
    { "duplicates", test_duplicates },
    { "detection", test_detection },
    { "azfw_legacy_text", test_azfw_legacy_text },
    { NULL, NULL },
};
