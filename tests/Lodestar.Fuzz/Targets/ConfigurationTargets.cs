using Lodestar.Discovery.Configuration;
using Lodestar.Discovery.Configuration.Internal;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Lodestar.Fuzz.Targets;

internal static class ConfigurationTargets
{
    /// <summary>
    /// An appsettings.json file, loaded by the JSON configuration provider, then every service it declares read through
    /// the configuration source. The provider documents <see cref="FormatException"/> (from a stream, the parser's
    /// <see cref="JsonException"/>) for a file that is not a JSON object, and the source never sees such a file; the
    /// source itself reports bad entries and must throw nothing.
    /// </summary>
    public static readonly FuzzTarget AppSettings = new(
        "configuration",
        "appsettings.json files read through the configuration endpoint source",
        static input =>
        {
            // Lodestar code first, for every input: afl-fuzz refuses a seed whose run reaches no instrumented code.
            var options = new ConfigurationSourceOptions();
            IConfigurationRoot configuration;
            try
            {
                configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(input, writable: false)).Build();
            }
            catch (Exception ex) when (ex is FormatException or JsonException)
            {
                // The JSON provider's documented answer to a file that is not a JSON object (the stream provider lets
                // the parser's JsonException through where the file provider wraps it); the source never sees it.
                return;
            }

            var services = configuration.GetSection(options.SectionName).GetChildren()
                .Concat(configuration.GetSection(options.CompatibilitySectionName!).GetChildren())
                .Select(s => s.Key)
                .Distinct(StringComparer.OrdinalIgnoreCase)
                // The endpoint cache never asks for a service without a name ("Services": {"": ...} declares none).
                .Where(static name => name.Length > 0)
                .Take(64);
            foreach (var service in services)
            {
                new ConfigurationEndpointSource(service, configuration, options).Read();
            }
        });
}
