from energy_diffusion.cli import main

main()
