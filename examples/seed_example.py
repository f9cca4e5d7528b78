from datetime import date
from alphadev import BacktestConfig, Backtester
from alphadev.alpha import Alpha
from alphadev.data import CSVDataLoader

class EchoAlpha(Alpha):
    @property
    def lookback(self):
        return 1
    def reset(self):
        pass
    def compute(self, data):
        return data.rename(columns={"value": "alpha"})[["alpha"]]

price_loader = CSVDataLoader(file_pattern="prices.csv", column_name="close")
alpha_loader = CSVDataLoader(file_pattern="alphas.csv", column_name="value")

base = BacktestConfig(
    name="base",
    alpha_class=EchoAlpha,
    alpha_kwargs={},
    start_date=date(2024, 1, 1),
    end_date=date(2024, 1, 31),
    symbols=["AAAUSDT", "BBBUSDT"],
    price_loader=price_loader,
    alpha_loaders=[alpha_loader],
    beta_csv_path="beta.csv",
    quantile=(0.2, 0.2),
    gross_exposure=1.0,
    frequency="1h",
    trading_fee_rate=4.5e-4,
    mode="batch",
    chunk_days=None,
)

grid = {"quantile": [(0.1, 0.1), (0.2, 0.25)]}

bt = Backtester()
bt.add_multiple_configs(base, param_grid={}, setting_grid=grid)

# Sequential
bt.run_all(num_processes=1, verbose=True)

# Parallel: 4 workers
bt.run_all(num_processes=4, verbose=True, err_path="errors.log", save_dir="runs/mp")
