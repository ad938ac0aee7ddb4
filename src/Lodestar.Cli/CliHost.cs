using System.CommandLine;
using Lodestar.Cli.Sources;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Cli;

/// <summary>Builds the service provider the registry-facing commands run on, and checks everything it can before they send anything.</summary>
internal static class CliHost
{
    /// <summary>Adds the options every registry-facing command takes, then the selected sources' own.</summary>
    public static void AddOptions(Command command, bool registering, params Option[] extra)
    {
        var options = new List<Option> { registering ? CliSources.RegistrySource : CliSources.Source, CliOptions.Config, CliOptions.Verbose };
        options.AddRange(extra);
        options.AddRange(CliSources.All.SelectMany(s => registering ? s.RegisterOptions : s.ResolveOptions));
        foreach (var option in CliSources.Distinct(options))
        {
            command.Options.Add(option);
        }
    }

    /// <summary>Reads the configuration, builds the services for <paramref name="source"/> and checks its settings.</summary>
    /// <exception cref="CliException">A file is missing or malformed, a value has the wrong type, or a setting is wrong.</exception>
    public static ServiceProvider Build(ParseResult parseResult, CliRun run, ICliSource source)
    {
        var console = run.Console;
        var configuration = ReadConfiguration(parseResult, console);
        run.Redactor.Add(configuration["Lodestar:Consul:Token"], configuration["Lodestar:Etcd:Password"], console.Environment("CONSUL_HTTP_TOKEN"), console.Environment("ETCD_PASSWORD"));

        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddSingleton(console);
        services.AddLogging(logging => logging
            .AddProvider(new CliLoggerProvider(run))
            .SetMinimumLevel(run.Verbose ? LogLevel.Debug : LogLevel.Error));

        var builder = services.AddLodestarCore();
        source.Configure(builder, parseResult);
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        try
        {
            // Materialise the options now: a value of the wrong type or a bad address fails here, with one line, and
            // not later inside a background loop.
            _ = provider.GetRequiredService<IOptionsMonitor<LodestarOptions>>().CurrentValue;
            source.Check(provider, console);
            run.Redactor.Add([.. source.Secrets(provider)]);
        }
        catch (InvalidOperationException ex) when (ex is not ObjectDisposedException)
        {
            // The configuration binder: "Failed to convert configuration value at 'Lodestar:ResolutionTimeout' to type 'System.TimeSpan'."
            provider.Dispose();
            throw new CliException("configuration: " + ex.Message + (ex.InnerException is { } inner ? " " + inner.Message : ""), ex);
        }
        catch
        {
            provider.Dispose();
            throw;
        }

        return provider;
    }

    private static IConfigurationRoot ReadConfiguration(ParseResult parseResult, CliConsole console)
    {
        var builder = new ConfigurationBuilder().SetBasePath(console.WorkingDirectory);
        var files = new List<string>();
        var local = Path.Combine(console.WorkingDirectory, "appsettings.json");
        if (File.Exists(local))
        {
            files.Add(local);
        }

        foreach (var file in parseResult.GetValue(CliOptions.Config) ?? [])
        {
            var path = Path.GetFullPath(file, console.WorkingDirectory);
            if (!File.Exists(path))
            {
                throw new CliException($"--config: the file '{file}' does not exist.");
            }

            files.Add(path);
        }

        foreach (var path in files)
        {
            builder.AddJsonFile(path, optional: false, reloadOnChange: true);
        }

        builder.AddEnvironmentVariables();
        try
        {
            return builder.Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException)
        {
            // The JSON provider wraps the parser's JsonException, whose message holds the line and position.
            var innermost = ex;
            while (innermost.InnerException is { } inner)
            {
                innermost = inner;
            }

            var file = files.FirstOrDefault(f => ex.Message.Contains(f, StringComparison.Ordinal)) ?? "a configuration file";
            throw new CliException($"{file} is not valid JSON configuration: {innermost.Message}", ex);
        }
    }
}
