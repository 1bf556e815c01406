from energy_diffusion.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    main()
