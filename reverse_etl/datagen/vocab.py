"""Fixed vocabularies the generator draws from.

Kept as plain tuples so that the output depends only on the seed: changing a list here changes the
generated data, so treat edits as a data-format change.
"""

from __future__ import annotations

import unicodedata

import numpy as np

# ---- helpers ---------------------------------------------------------------------------------------

_FOLD = {"ß": "ss", "ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ş": "s"}


def ascii_fold(text: str) -> str:
    """German umlauts spelled out, other accents dropped: how people write names in email addresses."""
    text = "".join(_FOLD.get(c, c) for c in text)
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def email_token(name: str) -> str:
    return ascii_fold(name).lower().replace("'", "").replace(" ", "")


def flat(groups: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """Per-country lists flattened, with each country's offset and length for vectorised picks."""
    values = tuple(v for group in groups for v in group)
    lengths = np.array([len(group) for group in groups], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return values, offsets, lengths


# ---- countries -------------------------------------------------------------------------------------

COUNTRIES = ("US", "GB", "DE", "FR")
COUNTRY_WEIGHTS = (0.45, 0.25, 0.15, 0.15)
CALLING_CODES = ("1", "44", "49", "33")
HOME_CURRENCY = (0, 1, 2, 2)  # index into CURRENCIES
CURRENCIES = ("USD", "GBP", "EUR", "CAD")
# Prices are set in USD; other currencies are converted and rounded to .99 / .49.
FX_FROM_USD = (1.0, 0.79, 0.92, 1.36)
TAX_RATE = (0.07, 0.20, 0.19, 0.20)

FIRST_NAMES = (
    # US
    (
        "James",
        "Mary",
        "Robert",
        "Patricia",
        "John",
        "Jennifer",
        "Michael",
        "Linda",
        "David",
        "Elizabeth",
        "William",
        "Barbara",
        "Richard",
        "Susan",
        "Joseph",
        "Jessica",
        "Thomas",
        "Sarah",
        "Carlos",
        "Karen",
        "Daniel",
        "Maria",
        "Matthew",
        "Ashley",
        "Anthony",
        "Emily",
        "Kevin",
        "Madison",
        "Jose",
        "Aaliyah",
    ),
    # GB
    (
        "Oliver",
        "Olivia",
        "George",
        "Amelia",
        "Harry",
        "Isla",
        "Jack",
        "Ava",
        "Charlie",
        "Emily",
        "Thomas",
        "Sophie",
        "Oscar",
        "Grace",
        "William",
        "Lily",
        "Alfie",
        "Freya",
        "Henry",
        "Chloe",
        "Arthur",
        "Poppy",
        "Leo",
        "Evie",
        "Noah",
        "Ruby",
        "Jacob",
        "Ella",
        "Mohammed",
        "Siobhan",
    ),
    # DE
    (
        "Lukas",
        "Anna",
        "Leon",
        "Lea",
        "Finn",
        "Lena",
        "Jonas",
        "Hannah",
        "Paul",
        "Mia",
        "Felix",
        "Laura",
        "Maximilian",
        "Julia",
        "Jürgen",
        "Katharina",
        "Tobias",
        "Sophie",
        "Moritz",
        "Marie",
        "Niklas",
        "Johanna",
        "Stefan",
        "Sabine",
        "Uwe",
        "Jörg",
        "Emre",
        "Ayşe",
        "Tim",
        "Franziska",
    ),
    # FR
    (
        "Gabriel",
        "Emma",
        "Louis",
        "Jade",
        "Raphaël",
        "Louise",
        "Jules",
        "Alice",
        "Adam",
        "Chloé",
        "Lucas",
        "Inès",
        "Hugo",
        "Léa",
        "Arthur",
        "Manon",
        "Théo",
        "Camille",
        "Nathan",
        "Zoé",
        "Léo",
        "Sarah",
        "Mathis",
        "Juliette",
        "Antoine",
        "Océane",
        "Yanis",
        "Amélie",
        "François",
        "Hélène",
    ),
)
LAST_NAMES = (
    (
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Garcia",
        "Miller",
        "Davis",
        "Rodriguez",
        "Martinez",
        "Hernandez",
        "Lopez",
        "Wilson",
        "Anderson",
        "Taylor",
        "Thomas",
        "Moore",
        "Jackson",
        "Martin",
        "Lee",
        "Thompson",
        "White",
        "Harris",
        "Clark",
        "Lewis",
        "Robinson",
        "Walker",
        "Young",
        "Allen",
        "O'Brien",
    ),
    (
        "Smith",
        "Jones",
        "Taylor",
        "Brown",
        "Williams",
        "Wilson",
        "Johnson",
        "Davies",
        "Patel",
        "Robinson",
        "Wright",
        "Thompson",
        "Evans",
        "Walker",
        "White",
        "Roberts",
        "Green",
        "Hall",
        "Wood",
        "Jackson",
        "Clarke",
        "Hughes",
        "Edwards",
        "Turner",
        "Khan",
        "Murphy",
        "Cooper",
        "Ward",
        "Morris",
        "Price",
    ),
    (
        "Müller",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Weber",
        "Meyer",
        "Wagner",
        "Becker",
        "Schulz",
        "Hoffmann",
        "Schäfer",
        "Koch",
        "Bauer",
        "Richter",
        "Klein",
        "Wolf",
        "Schröder",
        "Neumann",
        "Schwarz",
        "Zimmermann",
        "Braun",
        "Krüger",
        "Hofmann",
        "Hartmann",
        "Lange",
        "Schmitt",
        "Werner",
        "Yilmaz",
        "Krause",
        "Meier",
    ),
    (
        "Martin",
        "Bernard",
        "Thomas",
        "Petit",
        "Robert",
        "Richard",
        "Durand",
        "Dubois",
        "Moreau",
        "Laurent",
        "Simon",
        "Michel",
        "Lefèvre",
        "Leroy",
        "Roux",
        "David",
        "Bertrand",
        "Morel",
        "Fournier",
        "Girard",
        "Bonnet",
        "Dupont",
        "Lambert",
        "Fontaine",
        "Rousseau",
        "Vincent",
        "Muller",
        "Lefebvre",
        "Faure",
        "André",
    ),
)

# Mailbox providers for current addresses, per country.
EMAIL_DOMAINS = (
    ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com"),
    ("gmail.com", "gmail.com", "outlook.com", "hotmail.co.uk", "btinternet.com", "icloud.com", "yahoo.co.uk"),
    ("gmail.com", "web.de", "gmx.de", "gmx.de", "t-online.de", "outlook.de", "posteo.de"),
    ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr", "sfr.fr", "yahoo.fr"),
)
# Providers of the address a person used before changing email. Disjoint from EMAIL_DOMAINS, so that a
# person's old and new addresses always differ.
OLD_EMAIL_DOMAINS = (
    "aol.com", "comcast.net", "msn.com", "sky.com", "freenet.de", "wanadoo.fr", "live.com", "protonmail.com",
    "mac.com", "verizon.net",
)  # fmt: skip
N_EMAIL_PATTERNS = 5  # see render.email_local_parts

# Area codes used for US numbers (the subscriber number is derived from the person index, so numbers
# never collide between persons).
US_AREA_CODES = (
    "212", "646", "415", "628", "312", "617", "206", "303", "512", "305", "404", "213", "702", "503", "602", "615",
)  # fmt: skip
DE_PREFIXES = ("30", "151", "152", "160", "170", "176", "89", "40")  # Berlin, mobiles, Munich, Hamburg

CITIES = (
    (
        ("New York", "100"),
        ("San Francisco", "941"),
        ("Chicago", "606"),
        ("Boston", "021"),
        ("Seattle", "981"),
        ("Austin", "787"),
        ("Denver", "802"),
        ("Miami", "331"),
    ),
    (
        ("London", "SW1"),
        ("London", "E1"),
        ("Manchester", "M1"),
        ("Birmingham", "B1"),
        ("Leeds", "LS1"),
        ("Glasgow", "G1"),
        ("Bristol", "BS1"),
        ("Edinburgh", "EH1"),
    ),
    (
        ("Berlin", "101"),
        ("München", "803"),
        ("Hamburg", "203"),
        ("Köln", "506"),
        ("Frankfurt am Main", "603"),
        ("Stuttgart", "701"),
        ("Leipzig", "041"),
        ("Düsseldorf", "402"),
    ),
    (
        ("Paris", "750"),
        ("Lyon", "690"),
        ("Marseille", "130"),
        ("Toulouse", "310"),
        ("Nice", "060"),
        ("Nantes", "440"),
        ("Bordeaux", "330"),
        ("Lille", "590"),
    ),
)
STREETS = (
    ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Ave", "Washington Blvd", "2nd St", "Elm St"),
    (
        "High Street",
        "Station Road",
        "Church Lane",
        "Victoria Road",
        "Green Lane",
        "Mill Road",
        "Kings Road",
        "Queen Street",
    ),
    (
        "Hauptstraße",
        "Schulstraße",
        "Gartenstraße",
        "Bahnhofstraße",
        "Dorfstraße",
        "Bergstraße",
        "Lindenstraße",
        "Goethestraße",
    ),
    (
        "rue de la Paix",
        "avenue Victor Hugo",
        "rue de la République",
        "boulevard Voltaire",
        "rue Pasteur",
        "rue Jean Jaurès",
        "place de la Gare",
        "rue du Moulin",
    ),
)

# ---- web -------------------------------------------------------------------------------------------

SITE = "https://shop.example.com"
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
)
USER_AGENT_WEIGHTS = (0.30, 0.14, 0.22, 0.14, 0.06, 0.05, 0.06, 0.03)
KIOSK_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 StoreKiosk/2.3"
LIBRARY_VERSIONS = ("4.15.3", "4.16.0", "4.16.1", "5.2.0")
SERVER_LIBRARY = ("analytics-node", "2.1.2")

# (product_id, sku, name, category, price in USD)
PRODUCTS = (
    ("prod_1001", "TEE-BLK-M", "Classic Tee Black", "apparel", 24.0),
    ("prod_1002", "TEE-WHT-M", "Classic Tee White", "apparel", 24.0),
    ("prod_1003", "HOOD-GRY-L", "Heavy Hoodie Grey", "apparel", 68.0),
    ("prod_1004", "JKT-NVY-M", "Rain Jacket Navy", "apparel", 129.0),
    ("prod_1005", "SOCK-3PK", "Merino Socks 3-Pack", "apparel", 29.0),
    ("prod_1006", "CAP-OLV", "Canvas Cap Olive", "accessories", 22.0),
    ("prod_1007", "BAG-TOTE", "Organic Tote Bag", "accessories", 18.0),
    ("prod_1008", "BAG-BKPK", "Commuter Backpack", "accessories", 95.0),
    ("prod_1009", "BTL-750", "Steel Bottle 750ml", "home", 32.0),
    ("prod_1010", "MUG-CER", "Ceramic Mug", "home", 16.0),
    ("prod_1011", "CANDLE-FIG", "Fig Candle", "home", 38.0),
    ("prod_1012", "BLKT-WOOL", "Wool Throw Blanket", "home", 149.0),
    ("prod_1013", "SNK-RUN-42", "Trail Runner", "footwear", 139.0),
    ("prod_1014", "SNK-CRT-41", "Court Sneaker", "footwear", 99.0),
    ("prod_1015", "SLP-FELT", "Felt Slippers", "footwear", 45.0),
    ("prod_1016", "GIFT-25", "Gift Card 25", "gift_cards", 25.0),
    ("prod_1017", "GIFT-100", "Gift Card 100", "gift_cards", 100.0),
    ("prod_1018", "SUN-POL", "Polarised Sunglasses", "accessories", 79.0),
    ("prod_1019", "WLT-LTHR", "Leather Wallet", "accessories", 59.0),
    ("prod_1020", "YOGA-MAT", "Cork Yoga Mat", "sport", 74.0),
)
PRODUCT_WEIGHTS = (9, 8, 6, 3, 7, 5, 6, 3, 6, 7, 4, 1, 3, 4, 3, 2, 1, 2, 3, 2)


def _slug(text: str) -> str:
    return "-".join(ascii_fold(text).lower().replace("'", "").split())


# (name, path, title, weight). Product pages come first, one per product, in PRODUCTS order.
PAGES: tuple[tuple[str, str, str, float], ...] = (
    *((
        "Product",
        f"/products/{_slug(p[2])}",
        f"{p[2]} | Example Shop",
        0.45 * w / sum(PRODUCT_WEIGHTS),
    ) for p, w in zip(PRODUCTS, PRODUCT_WEIGHTS, strict=True)),
    ("Home", "/", "Example Shop | Everyday goods", 0.18),
    ("Collection", "/collections/new-arrivals", "New Arrivals | Example Shop", 0.07),
    ("Collection", "/collections/sale", "Sale | Example Shop", 0.06),
    ("Search", "/search", "Search | Example Shop", 0.05),
    ("Cart", "/cart", "Your Cart | Example Shop", 0.06),
    ("Account", "/account", "My Account | Example Shop", 0.03),
    ("Sign Up", "/account/register", "Create Account | Example Shop", 0.02),
    ("Blog", "/blog/how-we-source-merino", "How we source merino | Example Shop", 0.03),
    ("Blog", "/blog/gift-guide", "The Gift Guide | Example Shop", 0.03),
    ("Help", "/pages/shipping-returns", "Shipping & Returns | Example Shop", 0.02),
)  # fmt: skip
PAGE_SEARCH_TERMS = ("hoodie", "socks", "gift", "black tee", "running shoes", "mug", "blanket", "sale")
PAGE_HOME = len(PRODUCTS)
PAGE_CART = len(PRODUCTS) + 4
PAGE_ACCOUNT = len(PRODUCTS) + 5
PAGE_SIGNUP = len(PRODUCTS) + 6
PAGE_SEARCH = len(PRODUCTS) + 3

REFERRERS = (
    "",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://www.facebook.com/",
    "https://l.instagram.com/",
    "https://t.co/",
    "https://duckduckgo.com/",
    SITE + "/",
)
REFERRER_WEIGHTS = (0.34, 0.28, 0.04, 0.07, 0.05, 0.02, 0.03, 0.17)

# (utm_source, utm_medium, utm_campaign)
CAMPAIGNS = (
    ("google", "cpc", "brand_search"),
    ("google", "cpc", "spring_sale_2026"),
    ("facebook", "paid_social", "retargeting_q1"),
    ("instagram", "paid_social", "new_arrivals"),
    ("newsletter", "email", "weekly_digest"),
    ("tiktok", "paid_social", "creator_collab"),
    ("partner_blog", "referral", "gift_guide"),
    ("bing", "cpc", "brand_search"),
)

# (snake_case event, event as sent)
TRACK_EVENTS = (
    ("product_viewed", "Product Viewed"),
    ("product_added", "Product Added"),
    ("products_searched", "Products Searched"),
    ("cart_viewed", "Cart Viewed"),
    ("checkout_started", "Checkout Started"),
    ("order_completed", "Order Completed"),
)
EV_PRODUCT_VIEWED, EV_PRODUCT_ADDED, EV_SEARCHED, EV_CART_VIEWED, EV_CHECKOUT_STARTED, EV_ORDER_COMPLETED = (
    range(6)
)
# Browsing track events (orders add checkout_started and order_completed of their own).
BROWSE_EVENT_WEIGHTS = (0.43, 0.30, 0.13, 0.10, 0.04, 0.0)

# ---- shop ------------------------------------------------------------------------------------------

ORDER_STATUSES = ("completed", "refunded", "partially_refunded", "cancelled", "pending")
ORDER_STATUS_WEIGHTS = (0.83, 0.05, 0.04, 0.05, 0.03)
ST_COMPLETED, ST_REFUNDED, ST_PARTIAL, ST_CANCELLED, ST_PENDING = range(5)

# ---- crm -------------------------------------------------------------------------------------------

COMPANIES = (
    "Acme Corp", "Globex", "Initech", "Umbrella Retail", "Stark Logistics", "Wayne Foods", "Hooli",
    "Vandelay Industries", "Northwind Traders", "Contoso", "Fabrikam", "Tailspin Toys", "Blue Yonder Airlines",
    "Adventure Works", "Litware", "Proseware",
)  # fmt: skip
JOB_TITLES = (
    "Marketing Manager", "Head of Growth", "Software Engineer", "Office Manager", "CEO", "Buyer",
    "Procurement Lead", "Designer", "Student", "Teacher", "Nurse", "Consultant", "Operations Director",
    "Data Analyst",
)  # fmt: skip
LIFECYCLE_STAGES = ("subscriber", "lead", "marketing_qualified_lead", "opportunity", "customer", "evangelist")
NON_CUSTOMER_STAGE_WEIGHTS = (0.45, 0.35, 0.12, 0.08)

# ---- esp -------------------------------------------------------------------------------------------

ESP_EVENT_TYPES = ("sent", "delivered", "open", "click", "bounce", "unsubscribe", "spam_complaint")
(ESP_SENT, ESP_DELIVERED, ESP_OPEN, ESP_CLICK, ESP_BOUNCE, ESP_UNSUBSCRIBE, ESP_SPAM) = range(7)
EMAIL_CAMPAIGN_THEMES = (
    "Weekly Digest", "New Arrivals", "Spring Sale", "Back in Stock", "Members Early Access", "Gift Guide",
    "Last Chance", "Summer Edit", "Care Tips", "Refer a Friend",
)  # fmt: skip
CLICK_URLS = (
    SITE + "/collections/new-arrivals?utm_source=newsletter&utm_medium=email",
    SITE + "/collections/sale?utm_source=newsletter&utm_medium=email",
    SITE + "/blog/gift-guide?utm_source=newsletter&utm_medium=email",
    SITE + "/products/heavy-hoodie-grey?utm_source=newsletter&utm_medium=email",
    SITE + "/account?utm_source=newsletter&utm_medium=email",
)

# ---- consent ---------------------------------------------------------------------------------------

CONSENT_ID_TYPES = ("email", "user_id", "anonymous_id", "phone")
CID_EMAIL, CID_USER_ID, CID_ANON, CID_PHONE = range(4)
CONSENT_PURPOSES = ("email_marketing", "sms_marketing", "ads_personalization", "ad_user_data", "analytics")
P_EMAIL, P_SMS, P_ADS, P_AD_DATA, P_ANALYTICS = range(5)
CONSENT_STATUSES = ("granted", "revoked")
CONSENT_SOURCES = ("cookie_banner", "preference_center", "checkout", "crm_import")
SRC_BANNER, SRC_PREFS, SRC_CHECKOUT, SRC_CRM = range(4)

# ---- junk ------------------------------------------------------------------------------------------

# Placeholder values that real pipelines land in identifier columns. Staging must block them; they never
# appear in ground_truth.identifiers.
EMAIL_JUNK = ("test@test.com", "null", "undefined", "")
PHONE_JUNK = ("0000", "-1", "null", "")
USER_ID_JUNK = ("null", "undefined", "-1", "0000", "")
