using System.CommandLine;
using Lodestar.DependencyInjection;
using Microsoft.Extensions.DependencyInjection;

namespace Lodestar.Cli.Sources;

/// <summary>The configuration source: appsettings.json in the current folder, <c>--config</c> files and environment variables.</summary>
internal sealed class ConfigurationCliSource : ICliSource
{
    public string Name => "configuration";

    public IReadOnlyList<Option> Options => [];

    public void Configure(ILodestarBuilder builder, ParseResult parseResult) => builder.AddConfigurationSource();
}
