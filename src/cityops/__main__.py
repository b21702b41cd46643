from cityops.cli.main import run

run()
