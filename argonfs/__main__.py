from argonfs.cli import main

main()
