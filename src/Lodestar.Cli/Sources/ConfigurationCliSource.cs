using System.CommandLine;
using Lodestar.DependencyInjection;
using Lodestar.Registration;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Sources;

/// <summary>The configuration source: appsettings.json in the current folder, <c>--config</c> files and environment variables.</summary>
internal sealed class ConfigurationCliSource : ICliSource
{
    public string Name => "configuration";

    public IReadOnlyList<Option> ResolveOptions => [];

    public IReadOnlyList<Option> RegisterOptions => [];

    public bool CanRegister => false;

    public void Configure(ILodestarBuilder builder, ParseResult parseResult) => builder.AddConfigurationSource();

    public void Check(IServiceProvider services, CliConsole console)
    {
    }

    public IEnumerable<string?> Secrets(IServiceProvider services) => [];

    public string LeftBehind(IServiceProvider services, ServiceRegistration registration) => throw new NotSupportedException();
}
