using System.CommandLine;
using Lodestar.Cli.Sources;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Cli;

/// <summary>Builds the service provider the non-demo commands run on.</summary>
internal static class CliHost
{
    public static readonly Option<string?> Source = new("--source")
    {
        Description = "Endpoint source: " + string.Join(", ", CliSources.All.Select(s => s.Name)) + ". Default: the first that knows the service.",
    };

    public static readonly Option<FileInfo[]> Config = new("--config")
    {
        Description = "Extra JSON configuration file(s); appsettings.json in the current folder is always read when present.",
        AllowMultipleArgumentsPerToken = true,
    };

    public static readonly Option<bool> Json = new("--json") { Description = "Print JSON instead of a table." };

    public static readonly Option<bool> Verbose = new("--verbose") { Description = "Log Lodestar's own diagnostics to stderr." };

    /// <summary>Adds the options every registry-facing command takes.</summary>
    public static void AddSourceOptions(Command command)
    {
        command.Options.Add(Source);
        command.Options.Add(Config);
        command.Options.Add(Json);
        command.Options.Add(Verbose);
        command.Options.Add(CommonOptions.Address);
        var seen = new HashSet<string>(StringComparer.Ordinal) { CommonOptions.Address.Name };
        foreach (var source in CliSources.All)
        {
            foreach (var option in source.Options)
            {
                if (seen.Add(option.Name))
                {
                    command.Options.Add(option);
                }
            }
        }
    }

    public static ServiceProvider Build(ParseResult parseResult)
    {
        var configurationBuilder = new ConfigurationBuilder()
            .SetBasePath(Directory.GetCurrentDirectory())
            .AddJsonFile("appsettings.json", optional: true, reloadOnChange: true);
        foreach (var file in parseResult.GetValue(Config) ?? [])
        {
            configurationBuilder.AddJsonFile(file.FullName, optional: false, reloadOnChange: true);
        }

        configurationBuilder.AddEnvironmentVariables();
        var configuration = configurationBuilder.Build();

        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        var verbose = parseResult.GetValue(Verbose);
        services.AddLogging(logging => logging
            .AddConfiguration(configuration.GetSection("Logging"))
            .AddSimpleConsole(o => o.SingleLine = true)
            .AddFilter((_, level) => level >= (verbose ? LogLevel.Debug : LogLevel.Error))
            .Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace));

        var builder = services.AddLodestarCore();
        // Without --source only configuration is consulted: other registries need an address or credentials.
        var name = parseResult.GetValue(Source) ?? "configuration";
        var selected = CliSources.Find(name)
                       ?? throw new CliException($"Unknown source '{name}'. Known sources: {string.Join(", ", CliSources.All.Select(s => s.Name))}.");
        selected.Configure(builder, parseResult);

        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
    }
}
