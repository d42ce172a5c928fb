from wschan_cli.entry import main

main()
