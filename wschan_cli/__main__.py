from wschan_cli.cli import main

main()
