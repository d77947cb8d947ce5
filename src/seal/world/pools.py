"""Name and value pools of the synthetic world, and its fixed background knowledge.

All names are invented for this project. Every entity of every split draws from these shared pools, so the
tiny model sees every token in pretraining; what a held-out passage adds is new combinations.
"""

FIRST_NAMES = """Ada Alan Alma Amos Anna Arlo Beatrix Bram Carla Cedric Clara Colin Dara Dorian Edith Elias Elsa Emil
Esme Ezra Fay Felix Flora Gideon Greta Hugo Ida Ines Ivo Jasper Jonas June Kai Lena Leo Lila Linus Lotte Mabel Magnus
Mara Milo Mina Nadia Nils Nora Odette Olaf Orla Oscar Otto Pearl Petra Quinn Ralph Rhea Rosa Rufus Saul Selma Silas
Stella Tessa Theo Tilda Uma Ursula Vera Viggo Wanda Wendel Xena Yara Yusuf Zelda Zeno Agnes Basil Cora Dex Enid Frida
Gus Hedda Igor Jolene Kurt Lorna Moritz Nell Opal Percy Ruth Sven Thea Vita Walt Wren""".split()

SURNAMES = """Abbott Ainsley Barrow Beckett Blake Bower Brandt Calloway Carver Chandler Dalton Darrow Ellery Everett
Fairley Fenwick Garner Gilmore Hadley Halden Harlow Hastings Irving Jarvis Keller Kendrick Lambert Larkin Lowell Maddox
Marlow Mercer Morrow Nash Norwood Oakley Orwell Paxton Pember Quigley Radley Redford Rowan Sayer Sexton Sterling Sutton
Tanner Thorne Tolliver Underwood Vance Varley Wade Warrick Whitlock Winslow Yardley Yates Zeller Ashby Bexley Corrigan
Dunstan Eastwood Falkner Grady Holloway Ingram Jennings Kirby Linwood Mayfield Neville Oswin Prescott Ramsey Selwyn
Talbot Upton Vickers Wetherby""".split()

# fictional countries, each with the cities that lie in it (background knowledge every model learns)
COUNTRIES = {
    "Vetland": ["Calder", "Brenton", "Aldwick", "Kelton", "Yarrow"],
    "Norvia": ["Harwick", "Lindale", "Morwen", "Northby", "Zennor"],
    "Castria": ["Oakridge", "Pemberly", "Quillon", "Redmere", "Ashford"],
    "Belmora": ["Stonefield", "Thornbury", "Umberton", "Valemont", "Blackwater"],
    "Dunmark": ["Westmarch", "Coldharbor", "Deepdale", "Eastwick", "Foxmoor"],
    "Ostavia": ["Greywater", "Highgate", "Kingsbridge", "Larkspur", "Millbrook"],
    "Pelland": ["Newhaven", "Oldcastle", "Portree", "Ravenswood", "Silverton"],
    "Rovenia": ["Tidewater", "Underhill", "Wexford", "Brightwater", "Copperfield"],
    "Sarkand": ["Dovecote", "Emberly", "Fairhaven", "Goldcrest", "Hollowmere"],
    "Tyrene": ["Ironbridge", "Glenrock", "Dunmore", "Elsworth", "Mossgrove"],
}
CITY_COUNTRY = {city: country for country, cities in COUNTRIES.items() for city in cities}
CITIES = list(CITY_COUNTRY)

# occupations grouped by field (background knowledge)
FIELDS = {
    "medicine": ["surgeon", "nurse", "pharmacist"],
    "law": ["lawyer", "judge", "notary"],
    "music": ["pianist", "composer", "violinist"],
    "farming": ["farmer", "shepherd", "beekeeper"],
    "engineering": ["engineer", "architect", "mechanic"],
    "teaching": ["teacher", "tutor", "lecturer"],
    "trade": ["merchant", "banker", "shopkeeper"],
    "art": ["painter", "sculptor", "potter"],
    "science": ["chemist", "physicist", "biologist"],
    "seafaring": ["sailor", "fisherman", "navigator"],
}
OCCUPATION_FIELD = {occ: field for field, occs in FIELDS.items() for occ in occs}
OCCUPATIONS = list(OCCUPATION_FIELD)

# industries and what they produce (background knowledge)
INDUSTRY_PRODUCT = {
    "shipbuilding": "ships", "brewing": "beer", "weaving": "cloth", "mining": "coal", "printing": "books",
    "milling": "flour", "glassmaking": "glass", "tanning": "leather", "clockmaking": "clocks",
    "papermaking": "paper", "ironworking": "tools", "candlemaking": "candles",
}
INDUSTRIES = list(INDUSTRY_PRODUCT)

RIVERS = """Amber Brook Cray Dorne Esk Fleet Gara Hollin Isel Kennet Lune Mersa Nidd Ouse Pell Rother Sken Tamar Usk
Wey""".split()

COMPANY_STEMS = """Harrow Kestrel Bramble Copper Falcon Granite Heron Juniper Lantern Marigold Nimbus Orchard Pinnacle
Quarry Raven Saffron Thistle Umber Vantage Willow Anchor Beacon Cinder Drake Ember Foundry Garnet Hearth Ivory Jasper
Kingfisher Lynx Meadow Nettle Onyx Pebble Quill Russet Sable Tallow Acorn Birch Cobalt Dune Elm Fern Glacier Harbor Iris
Jade Kelp Laurel Maple Nova Oak Pine Quartz Reed Slate Topaz Umbra Vale Walnut Yew Zephyr Aster Briar Cedar Delta
Egret""".split()
COMPANY_SUFFIXES = ["Works", "Industries", "Company", "Group", "Brothers", "Trading", "Mills", "Holdings", "Partners",
                    "Foundry"]
SCHOOL_SUFFIXES = ["Academy", "Institute", "College", "School", "Seminary", "Lyceum"]
TOWN_PREFIXES = ["Port", "New", "Upper", "Lower", "Fort", "Saint", "East", "West", "North", "South"]
TOWN_STEMS = """Ambrel Bastow Corwin Delmar Elbrin Farrow Galen Hesket Innis Jorvik Kessel Lorne Maldon Norrin Orrin
Pellam Quenby Rastrick Sandor Tavish Ulvik Verran Wickham Yelden Zarrow Alder Bryn Carrick Dunmere Etheld Fenby Garrick
Halloran Isley Jessop Kilbride Lanark Mereth Nolan Oswick Pendry Quarrie Rosslyn Selby Tenby Uffing Vardon Welby Yarrel
Zelby Aberth Bellis Corran Dalby Elgin Fyfe Gorran Hythe Ilford Jarrow""".split()

YEARS = [str(y) for y in range(1800, 2000)]
