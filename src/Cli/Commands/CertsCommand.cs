using System.CommandLine;
using OrleansLimiter.Hosting;

namespace OrleansLimiter.Cli.Commands;

/// <summary>
/// <c>limiter certs create --out DIR [--days N] [--force]</c>: a private certificate authority for one
/// cluster and the silo and client certificates it signs, for <c>Orleans:Tls:*</c>. Needs no cluster.
/// </summary>
internal static class CertsCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out")
        {
            Description = "directory to write ca.crt, ca.key, silo.crt, silo.key, client.crt, client.key into",
            HelpName = "DIR",
            Required = true,
        };
        var days = CommonOptions.WholeNumber("--days", "N", "how many days the certificates are valid", min: 1, max: 3650, defaultValue: 365);
        var force = new Option<bool>("--force") { Description = "replace certificates already in the directory" };
        var keep = new Option<bool>("--keep-existing") { Description = "do nothing (exit 0) when the directory already holds a complete set" };
        var create = new Command("create", "create a cluster certificate authority and silo and client certificates (PEM)") { output, days, force, keep };
        create.SetAction(parse =>
        {
            var directory = parse.GetRequiredValue(output).FullName;
            var present = ClusterCertificates.Files.Where(f => File.Exists(Path.Combine(directory, f))).ToList();
            if (present.Count == ClusterCertificates.Files.Count && parse.GetValue(keep))
            {
                Console.WriteLine($"{directory} already holds a certificate set; kept");
                return ExitCodes.Ok;
            }

            if (present.Count > 0 && !parse.GetValue(force))
            {
                throw new UsageException($"{directory} already holds {string.Join(", ", present)}; pass --force to replace them or --keep-existing to keep a complete set");
            }

            ClusterCertificates.Create(directory, TimeSpan.FromDays(parse.GetValue(days)));
            Console.WriteLine($"wrote {string.Join(", ", ClusterCertificates.Files)} to {directory}");
            Console.WriteLine("silos: Orleans__Tls__Certificate=silo.crt, Orleans__Tls__Key=silo.key; clients: client.crt/client.key; both: Orleans__Tls__CaCertificate=ca.crt. Keep ca.key offline.");
            return ExitCodes.Ok;
        });

        return new Command("certs", "certificates for mutual TLS between silos and clients") { create };
    }
}
