using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Lodestar.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
